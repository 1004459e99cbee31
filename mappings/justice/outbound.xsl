<?xml version="1.0" encoding="UTF-8"?>
<!-- Case Exchange standard v1 -> community corrections SQJZ. Takes only what the system handles: the
     offender, the charges, the judgment and the execution notice. DefectNotice -> SQJZTH. -->
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
    xmlns:c="urn:cn:justice:case-exchange:1" xmlns:m="urn:cn:justice:case-exchange:mapping"
    exclude-result-prefixes="c m">
  <xsl:template match="c:Warning|c:Defect" mode="finding">
    <xsl:attribute name="GZ"><xsl:value-of select="c:Rule"/></xsl:attribute>
    <xsl:attribute name="JB"><xsl:value-of select="c:Severity"/></xsl:attribute>
    <xsl:if test="c:Location"><xsl:attribute name="WZ"><xsl:value-of select="c:Location"/></xsl:attribute></xsl:if>
    <xsl:if test="c:Line"><xsl:attribute name="HH"><xsl:value-of select="c:Line"/></xsl:attribute></xsl:if>
    <xsl:value-of select="concat(c:MessageZh, ' | ', c:MessageEn)"/>
  </xsl:template>
  <xsl:template match="c:Document" mode="ws">
    <xsl:attribute name="WH"><xsl:value-of select="c:Number"/></xsl:attribute>
    <xsl:attribute name="RQ"><xsl:value-of select="c:Date"/></xsl:attribute>
    <xsl:attribute name="DW"><xsl:value-of select="c:Issuer"/></xsl:attribute>
  </xsl:template>
  <xsl:template match="/c:CaseRecord">
    <xsl:variable name="p" select="c:Persons/c:Person[c:Role='offender' or c:Role='defendant'][1]"/>
    <SQJZ LX="{m:to-legacy('actions', c:Action)}">
      <AH><xsl:value-of select="c:CaseNumber"/></AH>
      <xsl:for-each select="c:LocalNumbers/c:LocalNumber"><BH DW="{@agency}"><xsl:value-of select="."/></BH></xsl:for-each>
      <FS><xsl:value-of select="c:Sender"/></FS>
      <xsl:for-each select="c:Receiver"><JS><xsl:value-of select="."/></JS></xsl:for-each>
      <xsl:for-each select="$p"><DX><XM><xsl:value-of select="c:Name"/></XM>
        <xsl:if test="c:ResidentId"><SFZH><xsl:value-of select="c:ResidentId"/></SFZH></xsl:if>
        <xsl:if test="c:BirthDate"><CSRQ><xsl:value-of select="c:BirthDate"/></CSRQ></xsl:if>
        <xsl:if test="c:Gender"><XB><xsl:value-of select="m:to-legacy('genders', c:Gender)"/></XB></xsl:if>
        <xsl:if test="c:Address"><ZZ><xsl:value-of select="c:Address"/></ZZ></xsl:if></DX></xsl:for-each>
      <xsl:for-each select="c:Offences/c:Offence[not(c:PersonRef) or c:PersonRef = $p/@id]"><ZM><xsl:value-of select="m:to-legacy('offences', c:Code)"/></ZM></xsl:for-each>
      <xsl:for-each select="c:Sentences/c:Sentence[c:PersonRef = $p/@id][1]"><XF ZX="{m:to-legacy('penalties', c:Penalty)}">
        <xsl:if test="c:TermMonths"><xsl:attribute name="XQ"><xsl:value-of select="c:TermMonths"/></xsl:attribute></xsl:if>
        <xsl:if test="c:Suspended"><xsl:attribute name="HX"><xsl:value-of select="c:Suspended"/></xsl:attribute></xsl:if>
        <xsl:if test="c:ProbationMonths"><xsl:attribute name="KYQ"><xsl:value-of select="c:ProbationMonths"/></xsl:attribute></xsl:if>
        <xsl:value-of select="c:Text"/></XF></xsl:for-each>
      <xsl:for-each select="c:Documents/c:Document[c:Type='judgment'][1]"><PJ><xsl:apply-templates select="." mode="ws"/></PJ></xsl:for-each>
      <xsl:for-each select="c:Documents/c:Document[c:Type='execution-notice'][1]"><TZ><xsl:apply-templates select="." mode="ws"/></TZ></xsl:for-each>
      <xsl:for-each select="c:Warnings/c:Warning"><TS><xsl:apply-templates select="." mode="finding"/></TS></xsl:for-each>
    </SQJZ>
  </xsl:template>
  <xsl:template match="/c:DefectNotice">
    <SQJZTH>
      <YXX><xsl:value-of select="c:OriginalMessageId"/></YXX>
      <xsl:if test="c:CaseNumber"><AH><xsl:value-of select="c:CaseNumber"/></AH></xsl:if>
      <SJ><xsl:value-of select="c:IssuedAt"/></SJ>
      <xsl:for-each select="c:Defect"><WT><xsl:apply-templates select="." mode="finding"/></WT></xsl:for-each>
    </SQJZTH>
  </xsl:template>
</xsl:stylesheet>
