<?xml version="1.0" encoding="UTF-8"?>
<!-- Police AJXX -> Case Exchange standard v1. Dates YYYYMMDD -> YYYY-MM-DD; codes through codes/*.csv. -->
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
    xmlns="urn:cn:justice:case-exchange:1" xmlns:m="urn:cn:justice:case-exchange:mapping"
    exclude-result-prefixes="m">
  <xsl:output method="xml" encoding="UTF-8"/>
  <xsl:template name="date"><xsl:param name="d"/>
    <xsl:value-of select="concat(substring($d,1,4),'-',substring($d,5,2),'-',substring($d,7,2))"/>
  </xsl:template>
  <xsl:template match="/AJXX">
    <CaseRecord version="1.0">
      <CaseNumber><xsl:value-of select="TYAJBH"/></CaseNumber>
      <Stage><xsl:value-of select="m:to-standard('stages', JD)"/></Stage>
      <Action><xsl:value-of select="m:to-standard('actions', YWLX)"/></Action>
      <Sender><xsl:value-of select="FSDW"/></Sender>
      <xsl:for-each select="JSDW"><Receiver><xsl:value-of select="."/></Receiver></xsl:for-each>
      <xsl:if test="AJBH"><LocalNumbers><xsl:for-each select="AJBH">
        <LocalNumber agency="{@DW}"><xsl:value-of select="."/></LocalNumber></xsl:for-each></LocalNumbers></xsl:if>
      <xsl:if test="RY"><Persons><xsl:for-each select="RY">
        <Person id="{RYBH}">
          <Role><xsl:value-of select="m:to-standard('roles', RYJS)"/></Role>
          <Name><xsl:value-of select="XM"/></Name>
          <xsl:if test="SFZH"><ResidentId><xsl:value-of select="SFZH"/></ResidentId></xsl:if>
          <xsl:if test="CSRQ"><BirthDate><xsl:call-template name="date"><xsl:with-param name="d" select="CSRQ"/></xsl:call-template></BirthDate></xsl:if>
          <xsl:if test="XB"><Gender><xsl:value-of select="m:to-standard('genders', XB)"/></Gender></xsl:if>
          <xsl:if test="ZZ"><Address><xsl:value-of select="ZZ"/></Address></xsl:if>
        </Person></xsl:for-each></Persons></xsl:if>
      <xsl:if test="ZM"><Offences><xsl:for-each select="ZM">
        <Offence><Code><xsl:value-of select="m:to-standard('offences', ZMDM)"/></Code>
          <xsl:if test="RYBH"><PersonRef><xsl:value-of select="RYBH"/></PersonRef></xsl:if>
          <xsl:if test="ZMMS"><Description><xsl:value-of select="ZMMS"/></Description></xsl:if></Offence></xsl:for-each></Offences></xsl:if>
      <xsl:if test="SJ"><Events><xsl:for-each select="SJ">
        <Event><Type><xsl:value-of select="m:to-standard('events', SJLX)"/></Type>
          <Date><xsl:call-template name="date"><xsl:with-param name="d" select="SJRQ"/></xsl:call-template></Date>
          <xsl:if test="RYBH"><PersonRef><xsl:value-of select="RYBH"/></PersonRef></xsl:if>
          <xsl:if test="BZ"><Note><xsl:value-of select="BZ"/></Note></xsl:if></Event></xsl:for-each></Events></xsl:if>
      <xsl:if test="WS"><Documents><xsl:for-each select="WS">
        <Document><Type><xsl:value-of select="m:to-standard('doctypes', WSLX)"/></Type>
          <Number><xsl:value-of select="WSBH"/></Number>
          <Date><xsl:call-template name="date"><xsl:with-param name="d" select="WSRQ"/></xsl:call-template></Date>
          <Issuer><xsl:value-of select="ZZDW"/></Issuer>
          <xsl:if test="WSMC"><Title><xsl:value-of select="WSMC"/></Title></xsl:if>
          <xsl:if test="WJBH"><FileRef><xsl:value-of select="WJBH"/></FileRef></xsl:if>
          <xsl:if test="QZ"><Signature algorithm="{QZ/@SF}" keyId="{QZ/@MY}"><xsl:value-of select="QZ"/></Signature></xsl:if>
        </Document></xsl:for-each></Documents></xsl:if>
      <xsl:if test="ZJ"><Evidence><xsl:for-each select="ZJ">
        <Item><Kind><xsl:value-of select="m:to-standard('evidence', ZJZL)"/></Kind>
          <xsl:if test="ZJMS"><Description><xsl:value-of select="ZJMS"/></Description></xsl:if>
          <xsl:if test="SZ"><Value unit="{SZ/@DW}"><xsl:value-of select="SZ"/></Value></xsl:if>
          <xsl:if test="WJBH"><FileRef><xsl:value-of select="WJBH"/></FileRef></xsl:if></Item></xsl:for-each></Evidence></xsl:if>
      <xsl:if test="WJ"><Dossier><xsl:for-each select="WJ">
        <File id="{WJBH}"><Name><xsl:value-of select="WJM"/></Name><MediaType><xsl:value-of select="WJLX"/></MediaType>
          <Size><xsl:value-of select="WJDX"/></Size><SHA256><xsl:value-of select="HASH"/></SHA256></File></xsl:for-each></Dossier></xsl:if>
    </CaseRecord>
  </xsl:template>
</xsl:stylesheet>
