<?xml version="1.0" encoding="UTF-8"?>
<!-- Procuratorate SOAP CaseMessage -> Case Exchange standard v1. -->
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
    xmlns="urn:cn:justice:case-exchange:1" xmlns:m="urn:cn:justice:case-exchange:mapping"
    xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:jc="urn:cn:procuratorate:tyyw:2"
    exclude-result-prefixes="m soapenv jc">
  <xsl:template match="/soapenv:Envelope">
    <xsl:variable name="r" select="soapenv:Header/jc:Routing"/>
    <xsl:for-each select="soapenv:Body/jc:CaseMessage">
    <CaseRecord>
      <xsl:attribute name="version"><xsl:choose>
        <xsl:when test="jc:Instruments/jc:Instrument[jc:Concerns or @result]">1.1</xsl:when>
        <xsl:otherwise>1.0</xsl:otherwise></xsl:choose></xsl:attribute>
      <CaseNumber><xsl:value-of select="jc:UnifiedNo"/></CaseNumber>
      <Stage><xsl:value-of select="m:to-standard('stages', jc:Procedure/@stage)"/></Stage>
      <Action><xsl:value-of select="m:to-standard('actions', jc:Procedure/@business)"/></Action>
      <Sender><xsl:value-of select="$r/jc:From"/></Sender>
      <xsl:for-each select="$r/jc:To"><Receiver><xsl:value-of select="."/></Receiver></xsl:for-each>
      <xsl:if test="jc:SentTime"><SentAt><xsl:value-of select="jc:SentTime"/></SentAt></xsl:if>
      <xsl:if test="jc:Numbers"><LocalNumbers><xsl:for-each select="jc:Numbers/jc:No">
        <LocalNumber agency="{@unit}"><xsl:value-of select="."/></LocalNumber></xsl:for-each></LocalNumbers></xsl:if>
      <xsl:if test="jc:Parties"><Persons><xsl:for-each select="jc:Parties/jc:Party">
        <Person id="{@ref}"><Role><xsl:value-of select="m:to-standard('roles', @type)"/></Role>
          <Name><xsl:value-of select="jc:FullName"/></Name>
          <xsl:if test="jc:IdNo"><ResidentId><xsl:value-of select="jc:IdNo"/></ResidentId></xsl:if>
          <xsl:if test="jc:Birth"><BirthDate><xsl:value-of select="jc:Birth"/></BirthDate></xsl:if>
          <xsl:if test="jc:Sex"><Gender><xsl:value-of select="m:to-standard('genders', jc:Sex)"/></Gender></xsl:if>
          <xsl:if test="jc:Domicile"><Address><xsl:value-of select="jc:Domicile"/></Address></xsl:if></Person>
      </xsl:for-each></Persons></xsl:if>
      <xsl:if test="jc:Charges"><Offences><xsl:for-each select="jc:Charges/jc:Charge">
        <Offence><Code><xsl:value-of select="m:to-standard('offences', @code)"/></Code>
          <xsl:if test="@party"><PersonRef><xsl:value-of select="@party"/></PersonRef></xsl:if>
          <xsl:if test="string(.)"><Description><xsl:value-of select="."/></Description></xsl:if></Offence>
      </xsl:for-each></Offences></xsl:if>
      <xsl:if test="jc:Events"><Events><xsl:for-each select="jc:Events/jc:Event">
        <Event><Type><xsl:value-of select="m:to-standard('events', @type)"/></Type><Date><xsl:value-of select="@date"/></Date>
          <xsl:if test="@party"><PersonRef><xsl:value-of select="@party"/></PersonRef></xsl:if>
          <xsl:if test="string(.)"><Note><xsl:value-of select="."/></Note></xsl:if></Event>
      </xsl:for-each></Events></xsl:if>
      <xsl:if test="jc:Instruments"><Documents><xsl:for-each select="jc:Instruments/jc:Instrument">
        <Document><Type><xsl:value-of select="m:to-standard('doctypes', @type)"/></Type><Number><xsl:value-of select="@no"/></Number>
          <Date><xsl:value-of select="@date"/></Date><Issuer><xsl:value-of select="@issuer"/></Issuer>
          <xsl:if test="jc:Title"><Title><xsl:value-of select="jc:Title"/></Title></xsl:if>
          <xsl:if test="jc:Attachment"><FileRef><xsl:value-of select="jc:Attachment"/></FileRef></xsl:if>
          <xsl:if test="jc:Seal"><Signature algorithm="{jc:Seal/@alg}" keyId="{jc:Seal/@key}"><xsl:value-of select="jc:Seal"/></Signature></xsl:if>
          <xsl:for-each select="jc:Concerns"><PersonRef><xsl:value-of select="."/></PersonRef></xsl:for-each>
          <xsl:if test="@result"><Outcome><xsl:value-of select="m:to-standard('outcomes', @result)"/></Outcome></xsl:if>
        </Document>
      </xsl:for-each></Documents></xsl:if>
      <xsl:if test="jc:Proofs"><Evidence><xsl:for-each select="jc:Proofs/jc:Proof">
        <Item><Kind><xsl:value-of select="m:to-standard('evidence', @kind)"/></Kind>
          <xsl:if test="jc:Desc"><Description><xsl:value-of select="jc:Desc"/></Description></xsl:if>
          <xsl:if test="jc:Amount"><Value unit="{jc:Amount/@unit}"><xsl:value-of select="jc:Amount"/></Value></xsl:if>
          <xsl:if test="jc:Attachment"><FileRef><xsl:value-of select="jc:Attachment"/></FileRef></xsl:if></Item>
      </xsl:for-each></Evidence></xsl:if>
      <xsl:if test="jc:Materials"><Dossier><xsl:for-each select="jc:Materials/jc:Material">
        <File id="{@id}"><Name><xsl:value-of select="."/></Name><MediaType><xsl:value-of select="@mime"/></MediaType>
          <Size><xsl:value-of select="@size"/></Size><SHA256><xsl:value-of select="@sha256"/></SHA256></File>
      </xsl:for-each></Dossier></xsl:if>
    </CaseRecord>
    </xsl:for-each>
  </xsl:template>
</xsl:stylesheet>
